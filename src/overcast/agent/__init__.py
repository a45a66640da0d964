"""overcast.agent"""
