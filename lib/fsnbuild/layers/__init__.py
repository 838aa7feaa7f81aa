"""Container layers from locked wheels: fetch, install into a tree, plan, and tar deterministically.

Nothing here runs the target's interpreter or any code from a downloaded wheel.
"""
