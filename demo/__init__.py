"""`make demo`: a live run on the local test bed. `load` is the bounded load generator run on the
host against the sample's Service; `report` turns its log and the orchestrator's samples into a
markdown report and one picture.
"""
