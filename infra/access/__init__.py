"""Access: the Cedar policy decision point and its policy files."""
