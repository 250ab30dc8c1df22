"""Dashboards kit: values -> load -> render -> assemble -> check -> write."""
