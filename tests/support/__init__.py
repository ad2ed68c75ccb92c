"""Helpers shared by the test groups: fakes, the tiny CLIP, hostile files, stacks."""
