"""Stateful property tests: random operation sequences against every backend."""
