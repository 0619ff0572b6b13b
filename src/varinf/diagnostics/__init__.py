"""(see README.md here)"""
