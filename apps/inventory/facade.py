"""The public door of the inventory context: the only module other contexts may import."""
