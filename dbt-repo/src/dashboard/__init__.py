"""The User Activity & Attrition dashboard and the demo's run summary."""
