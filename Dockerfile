# One image for the platform processes (api, worker, beat, bridge); the command picks the role.
FROM python:3.11-slim-bookworm AS platform
RUN useradd --system --create-home --uid 10001 tuanbox
# Chinese glyphs for the share posters the API draws (tuanbox.shop.poster).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY platform ./platform
COPY edge ./edge
COPY telemetry ./telemetry
COPY traceability ./traceability
COPY firmware_sim ./firmware_sim
RUN pip install --no-cache-dir '.[platform]'
USER tuanbox
ENV TUANBOX_ENV=production TUANBOX_LOG_FORMAT=json
EXPOSE 8000
CMD ["tuanbox", "api", "--host", "0.0.0.0"]

# The locker image: what a Raspberry Pi installs (edge extra only) plus the simulator.
FROM python:3.11-slim-bookworm AS locker
RUN useradd --system --create-home --uid 10002 --groups dialout tuanbox
WORKDIR /app
COPY pyproject.toml README.md ./
COPY platform ./platform
COPY edge ./edge
COPY telemetry ./telemetry
COPY traceability ./traceability
COPY firmware_sim ./firmware_sim
RUN pip install --no-cache-dir '.[edge]'
COPY deploy/locker/run-simulated.sh /usr/local/bin/run-simulated-locker
USER tuanbox
CMD ["run-simulated-locker"]
