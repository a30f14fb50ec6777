"""factory-boy factories, one module per context."""
