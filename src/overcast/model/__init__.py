"""overcast.model"""
