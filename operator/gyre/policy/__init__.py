"""What a cluster admin allows Gyre's workloads to run and read: pure policy decisions, shared by the operator (before
it creates anything) and the pods (before they trust anything)."""
