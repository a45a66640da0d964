"""overcast.store"""
