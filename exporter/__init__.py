"""Prometheus exporter for the backup status of Alibaba Cloud RDS instances."""

__version__ = "0.1.0"
