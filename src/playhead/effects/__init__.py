"""Effects: the plug-in protocol, the registry, model weights and the built-in effects."""
