"""Flash sales (秒杀): time-boxed SKUs with a stock cap, admitted by Redis, recorded by the DB."""
