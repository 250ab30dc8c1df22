"""The live check: synthetic data from the catalog, a real Prometheus on loopback, every query run."""
