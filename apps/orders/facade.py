"""The public door of the orders context: the only module other contexts may import."""
