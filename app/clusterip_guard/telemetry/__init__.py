"""What serve and scan both report: JSON log lines (`logs`) and Prometheus metrics (`metrics`)."""
