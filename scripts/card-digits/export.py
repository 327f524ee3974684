"""python export.py MODEL.pt OUT.onnx: the recogniser with a softmax, as ocrgate reads it (N,T,12)."""
import sys, torch
from train import Net
class Probabilities(torch.nn.Module):
    def __init__(self, net):
        super().__init__(); self.net = net
    def forward(self, x):
        return torch.softmax(self.net(x), 1).permute(0, 2, 1)
net = Net(); net.load_state_dict(torch.load(sys.argv[1])); net.eval()
model = Probabilities(net)
x = torch.zeros(1, 3, 32, 160)
torch.onnx.export(model, (x,), sys.argv[2], input_names=['x'], output_names=['probabilities'],
                  dynamic_axes={'x': {0: 'n', 3: 'width'}, 'probabilities': {0: 'n', 1: 'steps'}},
                  opset_version=17, dynamo=False)
import onnx; m = onnx.load(sys.argv[2]); onnx.checker.check_model(m); print('ok', len(m.SerializeToString()))
