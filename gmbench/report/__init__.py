"""Tidy records, reports and regression comparison."""
