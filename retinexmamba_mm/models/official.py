def convert_official_state_dict(sd): raise NotImplementedError
def is_official_checkpoint(o): return False
def load_official_checkpoint(p, map_location="cpu"): raise NotImplementedError
