"""What every stage shares: errors, file writing, progress, interrupts and versioned formats.

Imports nothing of edgeprune's but this package, so pruning, compiler and device can all use it.
"""
