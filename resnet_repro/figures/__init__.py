"""Figures: DataFrame in, matplotlib Figure out. The paper's Figures 6 and 7
(`paper_figures`), the figures of the probes of trained nets (`probes`), and what they all
share, colours, labels and the one writer `save_figure` (`style`).

A new figure goes here; it reads the tables' helpers, never the nets or the engine.
"""
