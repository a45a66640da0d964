"""overcast.cli"""
