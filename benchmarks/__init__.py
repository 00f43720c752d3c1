"""Timings of every case, manual against autograd, and of the MLP's backward at four sizes.

Run ``pytest benchmarks``; the README's Benchmarks section says what each group holds.
"""
