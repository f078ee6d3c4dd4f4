"""Registered samplers (DESIGN.md, "Contracts"): base.py holds the contract, ddpm.py and flow.py the built-ins."""
