"""Tests of the course tools: release, checks, grading, packaging."""
