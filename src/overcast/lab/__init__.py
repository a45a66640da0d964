"""overcast.lab"""
