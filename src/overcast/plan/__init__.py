"""overcast.plan"""
