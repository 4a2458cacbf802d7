"""Local services for development, tests and the demo: install, start, check and stop them."""

from tuanbox.devservices.manager import SERVICES, ServiceManager, ServiceStatus

__all__ = ["SERVICES", "ServiceManager", "ServiceStatus"]
