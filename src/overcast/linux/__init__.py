"""overcast.linux"""
