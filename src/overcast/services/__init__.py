"""overcast.services"""
