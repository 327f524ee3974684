"""python from_onnx.py MODEL.onnx OUT.pt: the weights of an exported recogniser back as train.py's
Net, to train on from there. The export folds each batch norm into its convolution, so each comes
back as that convolution with a batch norm that passes its input through plus the folded bias;
train such a net with FREEZE_BN=1 so its statistics stay as they are."""
import sys
import numpy as np
import onnx
import torch
from onnx import numpy_helper
from train import Net

model = onnx.load(sys.argv[1])
weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
net = Net()
state = net.state_dict()
convs = [w for w in weights if w.startswith('onnx::Conv_') and weights[w].dim() == 4]
blocks = [m for m in net.features if isinstance(m, torch.nn.Sequential)]
assert len(convs) == len(blocks), (convs, blocks)
for index, (name, block) in enumerate(zip(convs, blocks)):
    bias = weights['onnx::Conv_' + str(int(name.split('_')[1]) + 1)]
    conv, norm = block[0], block[1]
    conv.weight.data.copy_(weights[name])
    norm.weight.data.fill_(1.0)
    norm.bias.data.copy_(bias)
    norm.running_mean.zero_()
    norm.running_var.fill_(1.0 - norm.eps)
for key in ('context.0.weight', 'context.0.bias', 'context.2.weight', 'context.2.bias', 'out.weight',
            'out.bias'):
    net.state_dict()[key].copy_(weights['net.' + key])
net.eval()

# The same probabilities as the file, or the weights did not come back.
import onnxruntime
x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 160)).astype(np.float32)
session = onnxruntime.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])
expected = session.run(None, {'x': x})[0]
with torch.no_grad():
    got = torch.softmax(net(torch.from_numpy(x)), 1).permute(0, 2, 1).numpy()
print('largest difference', float(np.abs(got - expected).max()))
assert np.allclose(got, expected, atol=1e-4)
torch.save(net.state_dict(), sys.argv[2])
