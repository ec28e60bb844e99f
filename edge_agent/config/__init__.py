"""Agent configuration: models, loading and located errors."""

from edge_agent.config.loader import load_config, parse_config
from edge_agent.config.models import AgentConfig

__all__ = ["AgentConfig", "load_config", "parse_config"]
