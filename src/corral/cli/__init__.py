"""Typer commands; each is a thin shell over an orchestrator or store service."""
