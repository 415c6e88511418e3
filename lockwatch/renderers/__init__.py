"""Renderers: each turns an analysis Report into text in one format."""
