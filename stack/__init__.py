"""Developer tooling: the local stack (`make run`, test fixtures) and code generation."""
