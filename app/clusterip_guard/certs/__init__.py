"""Certificates: issuing a CA and serving certificates, and planning renewal and rotation.

Pure: PEM bytes in and out; where certificates are stored is the cluster edge's business.
"""
