"""CAPA: corrective and preventive actions, their effectiveness check and closure."""
