"""snnc.data"""
