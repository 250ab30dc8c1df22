"""PyAirtable dashboards kit: values -> load -> render -> assemble -> check -> write."""
