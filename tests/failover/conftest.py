"""The failover tests start their own PostgreSQL clusters and `eakte serve` processes."""
