"""overcast.api"""
