"""Spillway: a Kubernetes operator that keeps web services standing under heavy traffic."""

__version__ = "0.1.0"

GROUP = "spillway.io"
VERSION = "v1alpha1"
PLURAL = "scalableservices"
KIND = "ScalableService"
FIELD_MANAGER = "spillway"
