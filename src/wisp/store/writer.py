"""Batched activation writer (group commit). PLACEHOLDER — being written by the store work."""
