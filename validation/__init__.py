"""Computer-system validation of QMS: the user requirements (URS) with stable IDs, the
traceability matrix that links them to the test results of an OQ run, and the installation
qualification (IQ) of a live instance. `qms validate` runs them and writes the reports."""
