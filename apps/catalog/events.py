"""Domain events published by the catalog context (schemas are the contract; bump the version to change one)."""
