"""Agents that trade on fastlob through its public API only.

The torch agents (PPO, SAC, DQN) and the classical baselines arrive with the market-making
simulator; this package holds them, one readable file per algorithm.
"""
