"""The framework compatibility matrix: one small real app per framework, driven through Adapter."""
