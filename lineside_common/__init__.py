"""Small pieces shared by the simulators, the edge agent and the collector."""
