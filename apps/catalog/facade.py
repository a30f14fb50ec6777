"""The public door of the catalog context: the only module other contexts may import."""
