"""Simulators and fake counterparts: province generator, ground truth, faults, portal, postal."""
