"""This process's node: the bus to other worker processes over the channel layer."""

from .node import Node, get_node

__all__ = ["Node", "get_node"]
