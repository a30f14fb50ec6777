"""The public door of the payments context: the only module other contexts may import."""
